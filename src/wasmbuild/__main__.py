from wasmbuild.cli import main

raise SystemExit(main())

"""The release wing: what a release is and what is done with one, one module per file format or command.

    index      release.json: one entry per artifact (written by `nox -s release`, read back and validated)
    sums       SHA256SUMS: written over dist/, read back
    sbom       the CycloneDX SBOM of one artifact
    matrix     `wasmbuild matrix` (nox -s release): every version x target built and tested, the release written
    client     `wasmbuild download`: one artifact of a published release fetched, checked and unpacked
    verify     `wasmbuild verify`: an artifact checked against the files beside it, optionally rebuilt
    reproduce  `wasmbuild reproduce`: two cold builds under different conditions, compared byte for byte

index and sums are plain formats, imported by packaging too (it writes SHA256SUMS and removes a stale
release.json); no module below release/ imports the others (matrix runs the build, verify and reproduce start it).
"""

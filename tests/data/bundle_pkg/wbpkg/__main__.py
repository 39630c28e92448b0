import sys

from wbpkg import VERSION
from wbpkg.tool import shout

print(shout(f"wbpkg {VERSION} {' '.join(sys.argv[1:])}"))

# wasmbuild bundle: compiles the artifact's site-packages into code objects, run by the artifact's own python.wasm
# (bundle/__init__.py, compile_sources; not a module of wasmbuild itself): the bundle's interpreter, so its
# bytecode and marshal format. Deterministic with PYTHONHASHSEED=0 (frozenset constants are marshalled in hash
# order).
#
#     python -S -s -B compile.py SOURCES OUT
#
# SOURCES: one filename a line, each read and compiled under that name (what tracebacks show). OUT: for each,
# a little-endian u32 length and the marshal data of its code object, or 0xFFFFFFFF when it does not compile.
import marshal
import sys


def main(sources: str, out: str) -> None:
    with open(sources, encoding="utf-8") as f:
        names = f.read().splitlines()
    chunks = []
    for name in names:
        with open(name, "rb") as f:
            source = f.read()
        try:
            code = compile(source, name, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            print(f"{name}: does not compile ({type(exc).__name__}: {exc}); bundled as source", file=sys.stderr)
            chunks.append(b"\xff\xff\xff\xff")
            continue
        data = marshal.dumps(code)
        chunks.append(len(data).to_bytes(4, "little") + data)
    with open(out, "wb") as f:
        f.write(b"".join(chunks))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

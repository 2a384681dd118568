# render_envoy TEMPLATE OUT: fills ${NAME} placeholders from the environment; fails on any left.
render_envoy() {
  python3 - "$1" "$2" <<'PY'
import os, re, sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src).read()
missing = sorted({m for m in re.findall(r"\$\{([A-Z_]+)\}", text) if m not in os.environ})
if missing:
    sys.exit(f"render_envoy: {src}: no value for {', '.join(missing)}")
open(dst, "w").write(re.sub(r"\$\{([A-Z_]+)\}", lambda m: os.environ[m.group(1)], text))
PY
}

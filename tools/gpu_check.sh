#!/usr/bin/env bash
# The CUDA checks of docs/performance.md, as one prepared run on a GPU machine:
#   each method's training step (the Trainer's own step and loader) in fp32, AMP float16 and
#   AMP bfloat16, with MODEL.COMPILE off and on, at the real sizes (RN101 detector at 600 px,
#   batch 4; ViT-B/16 CoOp at batch 32 and AD-CLIP at 16 + 16), then SPG's GAN step, inference
#   images/s and CLIP the Gap's optimization step in fp32. Peak GPU memory is in every result.
#
#   tools/gpu_check.sh [OUT_DIR]      # default $OUT, else output/gpu; about 10 minutes on an H200
#   DEVICE=cpu DET=tiny CLS=tiny tools/gpu_check.sh /tmp/smoke   # the same runs on the CPU, tiny
#
# Writes one benchmark JSON per run, failures.txt (a run that failed or timed out, with its
# command) and summary.md. Random CLIP weights, synthetic data: needs no download.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-output/gpu}}
PY=${PY:-.venv/bin/python}
LIMIT=${LIMIT:-240}  # seconds per run
DEVICE=${DEVICE:-cuda} DET=${DET:-RN101} CLS=${CLS:-ViT-B-16}
mkdir -p "$OUT"
: > "$OUT/failures.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1

bench() {  # bench NAME ARGS...: one benchmark run into $OUT/NAME.json
  local name=$1; shift
  echo "== $name"
  timeout "$LIMIT" "$PY" tools/benchmark.py --device "$DEVICE" --json "$OUT/$name.json" "$@" \
    > "$OUT/$name.log" 2>&1 || echo "$name (exit $?): tools/benchmark.py $*" >> "$OUT/failures.txt"
}

for precision in fp32 float16 bfloat16; do
  amp=True; [ "$precision" = fp32 ] && amp=False
  for compile in False True; do
    opts=(--opts SOLVER.AMP.ENABLED "$amp" SOLVER.AMP.PRECISION "${precision/fp32/float16}"
          MODEL.COMPILE "$compile")
    tag="${precision}_compile${compile}"
    bench "train_detector_$tag" --suite detection --model "$DET" --batch 4 --iters 10 \
      --warmup 3 --cases 'train_loop[detector,2 workers]' "${opts[@]}"
    bench "train_coop_$tag" --suite classification --model "$CLS" --batch 32 --iters 10 \
      --warmup 3 --cases 'train_loop[coop,2 workers]' "${opts[@]}"
    bench "train_adclip_$tag" --suite classification --model "$CLS" --batch 16 --iters 10 \
      --warmup 3 --cases 'train_loop[adclip,2 workers]' "${opts[@]}"
  done
done
bench spg_and_inference --suite classification --model "$CLS" --iters 10 --warmup 2 \
  --cases spg_train_step --cases '*_inference[7,*' --cases '*_inference[65,*' \
  --cases 'text_encoding[345,*'
bench detector_fp32 --suite detection --model "$DET" --iters 10 --warmup 2 \
  --cases 'detector_inference' --cases 'optimization_step*' --cases 'detector_train_iter[*aug]'

"$PY" - "$OUT" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
lines = ["| run | case | batch | median s | images/s | peak GPU MiB |", "|---|---|---|---:|---:|---:|"]
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    with open(path) as f:
        report = json.load(f)
    for r in report["results"]:
        lines.append(f"| {os.path.basename(path)[:-5]} | {r['case']} | {r['batch']} | "
                     f"{r['median_s']:.4f} | {r['images_per_s']:.1f} | {r['peak_memory_mb']:.0f} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(text)
print(text)
PY
echo "failures:"; cat "$OUT/failures.txt"

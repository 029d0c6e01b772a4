#!/usr/bin/env bash
# The GPU check (issues 3, 7 and 11), as one prepared script for a lent CUDA machine (see the closing notes).
# Needs, carried beside the repo: .whl/ (mlflow-skinny, sqlalchemy, alembic, pydantic, ... for Python 3.12,
# the ones the machine lacks) and .data/fashion-mnist/ (the four IDX files). Writes its results to $OUT.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PAPERLAB_HOME=/tmp/plhome OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
  for profile in smoke quick; do
    start=$(date +%s.%N)
    timeout 240 python3 -m paperlab run kd-hinton --profile $profile --device cuda --data-dir .data/fashion-mnist \
      --json > "$OUT/$profile.json" 2> "$OUT/$profile.err" || { echo "$profile failed"; tail -5 "$OUT/$profile.err"; }
    echo "$profile on cuda: $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s wall"; cat "$OUT/$profile.json"
  done
  timeout 180 python3 benchmarks/bench_trainer.py --part mnist --device cuda --data-dir .data/fashion-mnist --epochs 3
  # issue 11: the MLPs through torch.compile against eager, same run: CUDA graphs, then fusion alone
  for mode in reduce-overhead default; do
    timeout 150 python3 benchmarks/bench_trainer.py --part mnist --device cuda --data-dir .data/fashion-mnist \
      --epochs 3 --compile $mode 2>&1 | grep -A3 "torch.compile" || echo "compile $mode failed"
  done
  # issue 11: the same MLP steps captured whole by hand (torch.cuda.graphs) and replayed, against trainer.fit
  timeout 150 python3 benchmarks/bench_cudagraph.py --device cuda --data-dir .data/fashion-mnist --epochs 3 \
    2> "$OUT/cudagraph.err" || { echo "bench_cudagraph failed"; tail -5 "$OUT/cudagraph.err"; }
  # issue 7: resnet32x4 -> resnet8x4 at batch 64 (kd, crd) against a DataLoader-style loop, and the projected
  # wall time of one 240-epoch CIFAR-100 run
  timeout 240 python3 benchmarks/bench_trainer.py --part cifar --device cuda --cifar-images 4096
  # issue 11: 5 seeds as one batched model against 5 runs, the smoke and quick MLP students
  timeout 240 python3 benchmarks/bench_seeds.py --device cuda --profiles smoke,quick --data-dir .data/fashion-mnist \
    2> "$OUT/seeds.err" || { echo "bench_seeds failed"; tail -5 "$OUT/seeds.err"; }
  start=$(date +%s.%N)
  timeout 300 python3 -m paperlab run kd-hinton --device cuda --dataset fashion-mnist --data-dir .data/fashion-mnist \
    --json > "$OUT/paper.json" 2> "$OUT/paper.err" || { echo "paper failed"; tail -5 "$OUT/paper.err"; }
  echo "paper profile on fashion-mnist, cuda: $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s wall"
  head -1 "$OUT/paper.err"; cat "$OUT/paper.json"
} 2>&1 | tee "$OUT/log.txt"

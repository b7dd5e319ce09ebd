#!/usr/bin/env bash
# Speed on one GPU of TPT, MaPLe+TPT, PromptAlign and PromptSync (CLIP ViT-B/16, the ImageNet-R configs): the
# reference loop vs the exact shortcuts vs batches of 8 and 16 samples, bf16 autocast, 64 views, 200 classes,
# plus a 1000-class (ImageNet) memory check of PromptSync at B=1 and B=8. Random weights and synthetic images
# (and a synthetic prototype bank where the config's is not on disk), so no data, weights or network are needed.
# About 6 minutes on one H200 (most of it building models and making views); under 8 with the defaults.
#
#   bash tools/device_bench.sh                 # results under ${RESULTS:-work_dirs/device_bench}/<run>/speed.{json,md}
#                                              # + summary.md; with $OUT set, summary.md and a .tgz of all go there
#   SAMPLES=16 bash tools/device_bench.sh      # fewer timed samples per mode
#
# On a machine without mmengine/open_clip and without network: run `bash tools/device_wheels.sh` here first and
# carry .whl/ along (the device tool: run(command='bash tools/device_bench.sh', carry=['.whl'], timeout_s=540)).
#
# Environment: PYTHON (default python3), RESULTS, OUT (the device tool's folder), SAMPLES (timed samples per mode, default 32), WARMUP (untimed
# samples per mode, rounded up to whole batches, default 16), VIEWS (default 64), PEAK_TFLOPS (default 989: H200
# bf16 dense), DEVICE (default cuda), CFG_OPTIONS (extra KEY=VALUE items for every run, applied last; e.g. a smoke
# test of this script on a CPU: DEVICE=cpu SAMPLES=1 WARMUP=0 VIEWS=4 CFG_OPTIONS=model.backbone.model_name=ps-tiny-vit).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
OUT_DIR=${RESULTS:-work_dirs/device_bench}
SAMPLES=${SAMPLES:-32}
WARMUP=${WARMUP:-16}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
VIEWS=${VIEWS:-64}
DEVICE=${DEVICE:-cuda}
read -r -a extra <<< "${CFG_OPTIONS:-}"
if [ -d .whl ]; then  # wheels made by tools/device_wheels.sh for a machine without the packages or network
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"

common=(--random-init --synthetic --views "$VIEWS" --peak-tflops "$PEAK_TFLOPS" --device "$DEVICE" --no-progress)
bench() {  # bench NAME CONFIG ARGS...: one benchmark_speed.py run into $OUT_DIR/NAME, its log beside it
    local name=$1 config=$2 start=$SECONDS
    shift 2
    echo "== $name: $config $*"
    [ ${#extra[@]} -eq 0 ] || set -- "$@" --cfg-options "${extra[@]}"
    "$PYTHON" tools/benchmark_speed.py "$config" "${common[@]}" --out "$OUT_DIR/$name" "$@" \
        > "$OUT_DIR/$name.log" 2>&1 || { tail -n 40 "$OUT_DIR/$name.log"; return 1; }
    sed -n '/^| mode /,/^$/p' "$OUT_DIR/$name/speed.md"
    echo "== $name: $((SECONDS - start)) s"
}

"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
for method in tpt maple_tpt promptalign promptsync; do
    bench "$method" "configs/$method/vit_b16_imagenet_r.py" --classes 200 --samples "$SAMPLES" --warmup "$WARMUP" \
        --modes reference,exact,batched:8,batched:16 --cfg-options model.backbone.precision=amp_bf16
done
# ImageNet's 1000 class names (data.dataset.type=ImageNet: names from the shipped class list, no images read)
bench promptsync_1000_classes configs/promptsync/vit_b16_imagenet_r.py --classes 1000 --samples 16 --warmup 8 \
    --modes exact,batched:8 --cfg-options model.backbone.precision=amp_bf16 data.dataset.type=ImageNet
for f in "$OUT_DIR"/*/speed.md; do cat "$f"; echo; done > "$OUT_DIR/summary.md"
if [ -n "${OUT:-}" ]; then  # the device tool brings back a few files from $OUT: the summary and one archive
    cp "$OUT_DIR/summary.md" "$OUT/summary.md"
    tar czf "$OUT/device_bench.tgz" -C "$OUT_DIR" .
fi
echo "all results under $OUT_DIR (summary.md)"

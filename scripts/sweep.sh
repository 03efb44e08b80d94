#!/usr/bin/env bash
# Measures every detector x landmarks x embedder x ONNX backend combination
# with `faced eval verify` and `faced bench pipeline`, and prints the
# Markdown table README.md quotes. TFLite models always run on the tflite
# backend; the backend column is the one running the ONNX models.
#
# Detection recall comes from `faced eval detect` on WIDER's >= 40 px and
# >= 20 px faces (WIDER=folder, default ../shared/data/wider; WIDER= skips).
#
#   scripts/sweep.sh [PAIRS] [IMAGES] > sweep.md      (needs bin/faced and jq)
#   scripts/sweep.sh ../shared/data/lfw/pairs.txt ../shared/data/lfw/images   (about 3 min a row)
set -euo pipefail
pairs=${1:-../shared/data/deepface/master.csv}
images=${2:-../shared/data/deepface}
wider=${WIDER-../shared/data/wider}
faced=${FACED:-bin/faced}
calls=${CALLS:-60}

detectors=(
  "ultraface-rfb320 landmark68"
  "blazeface-short landmark68" "blazeface-short -"
  "blazeface-full landmark68" "blazeface-full -"
  "blazeface-front-onnx landmark68" "blazeface-front-onnx -"
  "blazeface-back-onnx landmark68" "blazeface-back-onnx -"
)
embedders=(arcface-r512 mobilefacenet-192 mobilefacenet-192-onnx dlib-resnet-128 arcface-r512+mobilefacenet-192-onnx arcface-r512+mobilefacenet-192-onnx+dlib-resnet-128)
backends=(onnxrt opencvdnn)

# recall DETECTOR BACKEND CUT: wider recall at IoU 0.5 on faces >= CUT px.
recall() {
  [ -n "$wider" ] || { echo "-"; return; }
  "$faced" eval detect --detector "$1" --backend "$2" --images "$wider/images" \
    --annotations "$wider/annotations_ge$3px.csv" --json 2>/dev/null | jq -r '(.recall*1000|round)/1000'
}

echo "| detector | landmarks | embedder | backend | wider recall >=40 / >=20 px | no face | accuracy | TAR@FAR1e-3 | AUC | detect ms | landmarks ms | align ms | embed ms | det+align+embed ms (p50/p95) | img/s 1 core | img/s all cores | models MB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for d in "${detectors[@]}"; do
  read -r det lmk <<<"$d"
  [ "$lmk" = "-" ] && lmk=""
  for emb in "${embedders[@]}"; do
    for be in "${backends[@]}"; do
      align=keypoints; [ -n "$lmk" ] && align=landmarks
      args=(--backend "$be" --detector "$det" --landmarks "$lmk" --align "$align" --embedder "$emb" --liveness "")
      rec="$(recall "$det" "$be" 40) / $(recall "$det" "$be" 20)"
      if ! ev=$("$faced" eval verify --pairs "$pairs" --images "$images" --json "${args[@]}" 2>/dev/null); then
        echo "| $det | ${lmk:-keypoints} | $emb | $be | | failed | | | | | | | | | | | |"; continue
      fi
      bn=$("$faced" bench pipeline --images "$images" --calls "$calls" --json "${args[@]}" 2>/dev/null)
      jq -rn --argjson e "$ev" --argjson b "$bn" --arg lmk "${lmk:-keypoints}" --arg rec "$rec" '
        def f(x): (x*100|round)/100;
        "| \($b.detector) | \($lmk) | \($b.embedder) | \($b.backend) | \($rec) | \($e.no_face) | \(f($e.accuracy*100))% | \(f($e.tar_at_far_1e3*100))% | \(f($e.auc)) | \(f($b.modes.single.stages.detect.median_ms)) | \(f($b.modes.single.stages.landmarks.median_ms // 0)) | \(f($b.modes.single.stages.align.median_ms)) | \(f($b.modes.single.stages.embed.median_ms)) | \(f($b.modes.single.detect_align_embed.median_ms)) / \(f($b.modes.single.detect_align_embed.p95_ms)) | \(f($b.modes.single.images_per_s)) | \(f($b.modes.all_cores.images_per_s)) | \(f($b.model_mb)) |"'
    done
  done
done

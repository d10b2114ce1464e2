#!/usr/bin/env bash
# Make Fashion-MNIST available: Debian's dataset-fashion-mnist package (preferred), else torchvision's
# download into data/FashionMNIST/raw. Prints where it is, or one clear line and exit 1.
set -uo pipefail
DEB_DIR=/usr/share/datasets/fashion-mnist
PY=${PY:-python3}
have_deb() { ls "$DEB_DIR"/train-images-idx3-ubyte* >/dev/null 2>&1; }

if ! have_deb && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
  if [ "$SUDO" != none ]; then
    echo "installing Debian's dataset-fashion-mnist ..."
    $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }
  fi
fi
if have_deb; then echo "Fashion-MNIST: $DEB_DIR"; exit 0; fi
if ls data/FashionMNIST/raw/train-images-idx3-ubyte* >/dev/null 2>&1; then echo "Fashion-MNIST: data/FashionMNIST/raw"; exit 0; fi
echo "Debian package not available; trying torchvision's download into data/ ..."
if "$PY" -c "import torchvision; torchvision.datasets.FashionMNIST('data', download=True)" >/dev/null 2>&1; then
  echo "Fashion-MNIST: data/FashionMNIST/raw"; exit 0
fi
echo "error: Fashion-MNIST unavailable: run 'sudo apt-get install dataset-fashion-mnist', or put the four IDX files in data/FashionMNIST/raw/" >&2
exit 1

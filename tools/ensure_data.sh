#!/usr/bin/env bash
# Make sure the default report's dataset is on this machine: found in a Keras cache or Debian's
# dataset-fashion-mnist package; installed from Debian when we are root with apt; else say how.
set -u
py=${1:-.venv/bin/python}
if "$py" -m helpers.data check fashion_mnist; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's dataset-fashion-mnist (files under /usr/share/datasets/fashion-mnist) ..."
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
     || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null; }; then
    exec "$py" -m helpers.data check fashion_mnist
  fi
fi
cat >&2 <<'MSG'
Fashion-MNIST is needed for the default report and could not be installed automatically. Either:
  - as root on Debian/Ubuntu:  apt-get install dataset-fashion-mnist
  - or copy train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
    t10k-labels-idx1-ubyte.gz into ~/.keras/datasets/fashion-mnist/ (or $KERAS_HOME/datasets/fashion-mnist/)
MSG
exit 1

#!/bin/bash
# `t5 convert` (C, no torch: any loadable folder to model.safetensors) against torch itself
# (tests/torch/test_convert.py, Debian's python3-torch writes the inputs): the fixture through
# torch.save and back is byte-identical to Hugging Face's safetensors file; synthetic dtypes,
# views and --dtype conversions equal torch's; shards and index; sentence-transformers
# subfolders; bad inputs fail with one clear line.
# Run time: about 20 s on the shared 2-core machine (about 1 min under ASan).
# asan: yes
set -eu
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "python3-torch is missing (scripts/install-deps.sh installs it)"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../torch/test_convert.py"

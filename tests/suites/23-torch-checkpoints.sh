#!/bin/bash
# pytorch_model.bin without torch (tests/torch/test_torch.py): torch.save's own files (Debian's
# python3-torch) of the fixture checkpoints in every layout (zip, legacy, sharded + index,
# shared storages, offset and strided views, float16 / bfloat16) answer `t5 generate` exactly
# as their safetensors references; deflated / misaligned zip entries are copied with a note;
# pickles that would run code (os.system, posix.system, builtins.eval, other __reduce__
# targets) are refused by name with nothing run (marker files); the T5 PEGASUS port layout
# is served by build/t5serve with transformers' goldens. Bit-identical encoder outputs are
# checked by the unit test test_torch_load.
# Run time: about 60 s on the shared 2-core machine (2-3 min under ASan).
# asan: yes
set -eu
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "python3-torch is missing (scripts/install-deps.sh installs it)"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../torch/test_torch.py"

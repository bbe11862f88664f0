__version__ = "0.1.0"
from . import minimind, explicit     # both model lines register with transformers' Auto classes on `import explicitlm`

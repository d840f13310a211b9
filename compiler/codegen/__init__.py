"""Code generation: IR + memory plan -> source files; toolchain -> built library."""

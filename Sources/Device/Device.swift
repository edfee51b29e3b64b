// The `Device` module: see DESIGN.md (Modules) for what it owns and what it may depend on.

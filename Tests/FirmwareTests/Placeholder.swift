// Tests for the module of the same name; see DESIGN.md (Testing).

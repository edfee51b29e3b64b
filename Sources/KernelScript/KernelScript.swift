// The `KernelScript` module: the `tsmctl script` step language (docs/script-format.md).

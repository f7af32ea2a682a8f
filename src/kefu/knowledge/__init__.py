"""Knowledge: standard phrases (规范用语) with placeholders; articles come later."""

"""plugzoo's shared plugin layer: host fixes (compat/), discovery (catalogue), doctor, demo."""

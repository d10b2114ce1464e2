"""``python -m padlib.audit MODEL --padding MODE``: the padding audit of padlib.padding.audit."""

from padlib.padding.audit import main

if __name__ == "__main__":
    raise SystemExit(main())

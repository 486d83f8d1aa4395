"""``python -m fanwatch``: the ``fanwatch`` command (:func:`fanwatch.cli.main`)."""

from fanwatch.cli import main

raise SystemExit(main())

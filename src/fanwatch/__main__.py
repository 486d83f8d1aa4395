from fanwatch.cli import main

raise SystemExit(main())

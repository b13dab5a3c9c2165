from dropserver.cli import main

raise SystemExit(main())

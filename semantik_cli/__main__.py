from semantik_cli.main import main

raise SystemExit(main())

"""``python -m adapters.faspay_dana.emulator``."""

from adapters.faspay_dana.emulator import main

raise SystemExit(main())

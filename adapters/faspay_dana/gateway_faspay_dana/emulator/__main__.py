"""``python -m gateway_faspay_dana.emulator``."""

from gateway_faspay_dana.emulator import main

raise SystemExit(main())

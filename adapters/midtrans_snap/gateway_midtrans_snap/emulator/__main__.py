"""``python -m gateway_midtrans_snap.emulator``."""

import sys

from gateway_midtrans_snap.emulator._cli import main

sys.exit(main())

import sys

from bench.shift.run import main

sys.exit(main())

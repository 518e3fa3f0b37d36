import sys

from realm.cli.main import main

sys.exit(main())

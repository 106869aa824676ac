"""``python -m helpers.malaria DATA``: summarise a malaria data folder (see helpers.malaria.data)."""

import sys

from helpers.malaria.data import main

sys.exit(main())

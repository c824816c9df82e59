import sys

from cry_mqtt.cli import main

sys.exit(main())

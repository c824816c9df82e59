"""``python -m cry_mqtt`` and the ``cry-mqtt`` console script.

The command line's modules take about a second to import (numpy, onnxruntime); a Ctrl-C then,
before the agent handles stop signals itself, or during ``score`` ends it with one line, not a
traceback. (One in the interpreter's own first tens of milliseconds, before any of this runs,
is Python's to report.)
"""

import signal
import sys

EXIT_INTERRUPTED = 128 + signal.SIGINT


def main() -> int:
    """Run the command line (:func:`cry_mqtt.cli.main`)."""
    try:
        from cry_mqtt.cli import main as command_line

        return command_line()
    except KeyboardInterrupt:
        print("cry-mqtt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

"""The steps of ``python -m training``, each group's command-line wiring beside the handlers that
run them: :mod:`~training.steps.data`, :mod:`~training.steps.recipes`,
:mod:`~training.steps.models`; the night test's is :func:`training.night.add_parser`. A handler
imports what its step needs only when it runs, so that ``--help`` stays fast."""

"""The data room: where labelled recordings come from and how they reach a network.

- :mod:`~training.data.audio`: decoding (as the agent does), the phone codec, event checks;
- :mod:`~training.data.items`: a labelled recording and the common layouts' readers;
- :mod:`~training.data.debian`, :mod:`~training.data.emogator`, :mod:`~training.data.singing`:
  the Debian packages, EmoGator's adult vocal bursts, rendered sung lullabies;
- :mod:`~training.data.sources`: every source in one call;
- :mod:`~training.data.split`: the grouped split and folds;
- :mod:`~training.data.cache`: the prepared cache every later step reads;
- :mod:`~training.data.windows`, :mod:`~training.data.augment`: training and validation windows;
- :mod:`~training.data.audit`: contact sheets of the positives;
- :mod:`~training.data.cli`: ``fetch-debian``, ``sing``, ``prepare``, ``audit``.
"""

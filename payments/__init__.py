"""The rules of paystream: statuses, transitions, money and card-data checks. No I/O."""

"""Weight formats: the pack's relight format and IC-Light offsets."""

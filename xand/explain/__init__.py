"""Attribution methods (Captum), scores against clinical masks, one-ECG and batch explanation."""

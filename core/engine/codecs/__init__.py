"""Media codecs: bounded image decoders and the image encoders generators and effects share."""

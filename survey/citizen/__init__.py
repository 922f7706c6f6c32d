"""The citizen journey: a QR code on a receipt or at a counter, one page of questions, a thank-you."""

"""Printed material: counter QR posters and receipt-code slips (officer workspace)."""

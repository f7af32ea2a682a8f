"""The customer portal: contacts sign in, submit and follow their customer's tickets."""

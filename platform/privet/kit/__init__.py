"""Small pieces shared by every domain: errors, identifiers, time."""

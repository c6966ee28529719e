//! The one rule for names that become file and folder names: the experiment's (its
//! results folder), a table's (its files), and the grid's names in a run id's slug.

/// Whether a name may keep `c` in a file name: ASCII letters and digits, `-`, `_`, `.`.
pub fn is_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// `name` with every character the rule does not keep written as `_`.
pub fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| if is_safe_char(c) { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_become_underscores() {
        assert_eq!(safe_file_name("grid 2d/λ=1.5"), "grid_2d___1.5");
        assert!(is_safe_char('.') && !is_safe_char('/'));
    }
}

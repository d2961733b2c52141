/// The id printed by `start --detach` (first line: `backend <id> ready: ...`).
pub fn id_of(start_output: &str) -> String {
    start_output
        .lines()
        .find_map(|l| l.strip_prefix("backend "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no id in {start_output:?}"))
        .to_string()
}

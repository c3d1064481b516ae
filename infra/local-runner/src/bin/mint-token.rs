//! `mint-token SUB [SCOPE ...]`: prints a development token the local
//! runner accepts (one hour), e.g. `mint-token ops deletion:operator`.
//! Uses the same `LOCAL_JWT_*` settings as the runner.

use local_runner::token::DevIssuer;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(sub) = args.first() else {
        eprintln!("usage: mint-token SUB [SCOPE ...]   (scopes: deletion:operator, deletion:suppressions:read)");
        std::process::exit(2);
    };
    let scopes: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let now = chrono::Utc::now().timestamp();
    match DevIssuer::from_env().mint(sub, &scopes, now, 3600) {
        Ok(token) => println!("{token}"),
        Err(e) => {
            eprintln!("mint-token: {e}");
            std::process::exit(1);
        }
    }
}

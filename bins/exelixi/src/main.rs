//! `exelixi`: the command line over the built-in problems (all of it lives in the library,
//! so that a binary of one's own offers the same over its own problems).

fn main() -> std::process::ExitCode {
    exelixi::main_with(exelixi::Catalog::builtin())
}

//! The step graph: dependency edges, cycle detection and a deterministic topological order.

use std::collections::{BTreeMap, BTreeSet};

/// Where an edge comes from in the sources, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeOrigin {
    pub file: String,
    pub line: usize,
    pub call: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", describe_cycle(.0))]
pub struct CycleError(pub Vec<EdgeOrigin>);

fn describe_cycle(edges: &[EdgeOrigin]) -> String {
    edges
        .iter()
        .map(|e| format!("{}:{} {}", e.file, e.line, e.call))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Nodes are step names; an edge `a -> b` means `a` reads what `b` builds.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    dependencies: BTreeMap<String, BTreeMap<String, EdgeOrigin>>,
}

impl Dag {
    pub fn add_node(&mut self, node: &str) {
        self.dependencies.entry(node.to_string()).or_default();
    }

    pub fn add_edge(&mut self, from: &str, to: &str, origin: EdgeOrigin) {
        self.add_node(to);
        self.dependencies
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_insert(origin);
    }

    pub fn dependencies_of(&self, node: &str) -> impl Iterator<Item = &str> {
        self.dependencies
            .get(node)
            .into_iter()
            .flat_map(|deps| deps.keys().map(String::as_str))
    }

    /// All nodes, dependencies first; ties broken by name so the order never varies.
    pub fn topological_order(&self) -> Result<Vec<String>, CycleError> {
        if let Some(cycle) = self.find_cycle() {
            return Err(CycleError(cycle));
        }
        let mut remaining: BTreeMap<&str, usize> = self
            .dependencies
            .iter()
            .map(|(node, deps)| (node.as_str(), deps.len()))
            .collect();
        let mut ready: BTreeSet<&str> = remaining
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(node, _)| *node)
            .collect();
        let mut order = Vec::with_capacity(remaining.len());
        while let Some(node) = ready.pop_first() {
            remaining.remove(node);
            order.push(node.to_string());
            for (dependant, deps) in &self.dependencies {
                if deps.contains_key(node)
                    && let Some(n) = remaining.get_mut(dependant.as_str())
                {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(dependant);
                    }
                }
            }
        }
        Ok(order)
    }

    /// The given nodes in dependency order (their dependencies outside the set are not added:
    /// a pipeline runs exactly the steps it lists).
    pub fn order_subset(&self, nodes: &BTreeSet<String>) -> Result<Vec<String>, CycleError> {
        Ok(self
            .topological_order()?
            .into_iter()
            .filter(|n| nodes.contains(n))
            .collect())
    }

    fn find_cycle(&self) -> Option<Vec<EdgeOrigin>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        fn visit<'a>(
            dag: &'a Dag,
            node: &'a str,
            marks: &mut BTreeMap<&'a str, Mark>,
            path: &mut Vec<(&'a str, &'a EdgeOrigin)>,
        ) -> Option<Vec<EdgeOrigin>> {
            marks.insert(node, Mark::Visiting);
            for (dep, origin) in dag.dependencies.get(node).into_iter().flatten() {
                path.push((node, origin));
                match marks.get(dep.as_str()) {
                    Some(Mark::Visiting) => {
                        let start = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        return Some(path[start..].iter().map(|(_, o)| (*o).clone()).collect());
                    }
                    Some(Mark::Done) => {}
                    None => {
                        if let Some(cycle) = visit(dag, dep, marks, path) {
                            return Some(cycle);
                        }
                    }
                }
                path.pop();
            }
            marks.insert(node, Mark::Done);
            None
        }
        let mut marks = BTreeMap::new();
        for node in self.dependencies.keys() {
            if !marks.contains_key(node.as_str())
                && let Some(cycle) = visit(self, node, &mut marks, &mut Vec::new())
            {
                return Some(cycle);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(file: &str, line: usize, call: &str) -> EdgeOrigin {
        EdgeOrigin {
            file: file.into(),
            line,
            call: call.into(),
        }
    }

    #[test]
    fn dependencies_come_first_and_ties_are_ordered_by_name() {
        let mut dag = Dag::default();
        dag.add_edge("c", "a", origin("c.sql", 1, "ref(a)"));
        dag.add_edge("b", "a", origin("b.sql", 1, "ref(a)"));
        dag.add_edge("d", "c", origin("d.sql", 1, "ref(c)"));
        dag.add_node("e");
        assert_eq!(dag.topological_order().unwrap(), ["a", "b", "c", "d", "e"]);
        let subset = BTreeSet::from(["d".to_string(), "a".to_string()]);
        assert_eq!(dag.order_subset(&subset).unwrap(), ["a", "d"]);
    }

    #[test]
    fn a_cycle_is_reported_with_each_file_and_line() {
        let mut dag = Dag::default();
        dag.add_edge("a", "b", origin("sql/x/a.sql", 3, "ref(\"b\")"));
        dag.add_edge("b", "c", origin("sql/x/b.sql", 5, "ref(\"c\")"));
        dag.add_edge("c", "a", origin("sql/x/c.sql", 7, "ref(\"a\")"));
        let err = dag.topological_order().unwrap_err().to_string();
        assert_eq!(
            err,
            "dependency cycle: sql/x/a.sql:3 ref(\"b\") -> sql/x/b.sql:5 ref(\"c\") -> sql/x/c.sql:7 ref(\"a\")"
        );
    }
}

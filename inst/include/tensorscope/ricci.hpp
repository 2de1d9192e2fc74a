// Discrete Ricci curvature of a weighted undirected graph (edge weights = lengths).
//
// Ollivier-Ricci (Ollivier 2009), in GraphRicciCurvature's convention (Ni et al. 2015):
//   kappa(x, y) = 1 - W1(m_x, m_y) / d(x, y),
// m_x puts mass alpha on x and (1 - alpha) exp(-w(x, v)^p) / sum on each neighbour v;
// d is the shortest-path distance. W1 is solved exactly by the transportation simplex
// (network simplex on the complete bipartite graph of the two supports, which have
// deg + 1 points each); the ground costs are shortest-path distances, found by
// Dijkstra from each point of N[x] that stops as soon as every point of the supports
// N[y] of x's edges is settled, so no all-pairs computation is needed.
//
// Forman-Ricci (Sreejith et al. 2016, node weights 1), as GraphRicciCurvature's
// FormanRicci without triangles:
//   F(e) = w_e (2 / w_e - sum_{e' ~ x, e' != e} 1 / sqrt(w_e w_e') - sum_{e' ~ y, e' != e} ...),
// which is 4 - deg(x) - deg(y) on an unweighted graph.
#pragma once

#include "common.hpp"
#include "knn.hpp"

#include <cmath>
#include <limits>
#include <queue>

namespace tensorscope {

// Undirected graph in compressed adjacency form; edges (from < to) listed once.
struct Graph {
  Index n = 0;
  std::vector<Index> offset;  // n + 1
  std::vector<int> adj;       // neighbours, ascending per node
  std::vector<double> w;      // their edge lengths
  std::vector<int> from, to;  // edge list, from < to, ordered by (from, to)
  std::vector<double> weight;
};

// Builds the graph from an edge list (0-based, any order, duplicates merged keeping
// the smallest length, self-loops dropped).
inline Graph make_graph(Index n, const std::vector<int>& a, const std::vector<int>& b,
                        const std::vector<double>& len) {
  std::vector<std::tuple<int, int, double>> e;
  e.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    if (a[i] < 0 || b[i] < 0 || a[i] >= n || b[i] >= n) throw ts_error(ErrorKind::argument, "graph: vertex out of range");
    if (!(len[i] > 0) || !std::isfinite(len[i])) throw ts_error(ErrorKind::argument, "graph: edge lengths must be positive and finite");
    e.emplace_back(std::min(a[i], b[i]), std::max(a[i], b[i]), len[i]);
  }
  std::sort(e.begin(), e.end());
  Graph g;
  g.n = n;
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (i > 0 && std::get<0>(e[i]) == g.from.back() && std::get<1>(e[i]) == g.to.back()) continue;
    g.from.push_back(std::get<0>(e[i]));
    g.to.push_back(std::get<1>(e[i]));
    g.weight.push_back(std::get<2>(e[i]));
  }
  std::vector<Index> deg(static_cast<std::size_t>(n), 0);
  for (std::size_t i = 0; i < g.from.size(); ++i) {
    ++deg[g.from[i]];
    ++deg[g.to[i]];
  }
  g.offset.assign(static_cast<std::size_t>(n) + 1, 0);
  for (Index v = 0; v < n; ++v) g.offset[v + 1] = g.offset[v] + deg[v];
  g.adj.resize(static_cast<std::size_t>(g.offset[n]));
  g.w.resize(g.adj.size());
  std::vector<Index> pos(g.offset.begin(), g.offset.end() - 1);
  // edges sorted by (from, to): filling in this order keeps each list ascending for
  // the "to" side; the "from" side receives smaller ids first as well.
  std::vector<std::vector<std::pair<int, double>>> tmp(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < g.from.size(); ++i) {
    tmp[g.from[i]].emplace_back(g.to[i], g.weight[i]);
    tmp[g.to[i]].emplace_back(g.from[i], g.weight[i]);
  }
  for (Index v = 0; v < n; ++v) {
    std::sort(tmp[v].begin(), tmp[v].end());
    for (const auto& pr : tmp[v]) {
      g.adj[pos[v]] = pr.first;
      g.w[pos[v]++] = pr.second;
    }
  }
  return g;
}

// Symmetrised kNN graph: i ~ j when j is among i's k nearest or i among j's.
inline Graph knn_graph(const Knn& nn) {
  std::vector<int> a, b;
  std::vector<double> len;
  for (Index i = 0; i < nn.index.rows(); ++i)
    for (Index r = 0; r < nn.index.cols(); ++r) {
      a.push_back(static_cast<int>(i));
      b.push_back(nn.index(i, r));
      len.push_back(nn.dist(i, r));
    }
  return make_graph(nn.index.rows(), a, b, len);
}

// ---- exact optimal transport between two small discrete measures --------------------
//
// Transportation simplex: minimise sum c_ij f_ij subject to row sums a, column sums b.
// Start from the north-west-corner basis (a spanning tree of m + n - 1 cells, zero
// flows allowed), price with potentials u_i + v_j = c_ij on the tree, bring in the most
// negative reduced cost (Bland's first-negative rule after a run of degenerate pivots,
// which rules out cycling), pivot around the tree cycle.
class Transport {
 public:
  // C: m x n row-major costs. a, b: non-negative masses with equal sums.
  double solve(const std::vector<double>& a, const std::vector<double>& b, const std::vector<double>& C) {
    m_ = static_cast<int>(a.size());
    n_ = static_cast<int>(b.size());
    const int nb = m_ + n_ - 1;
    bi_.assign(nb, 0);
    bj_.assign(nb, 0);
    f_.assign(nb, 0.0);
    // north-west corner
    {
      std::vector<double> ra(a), rb(b);
      int i = 0, j = 0;
      for (int c = 0; c < nb; ++c) {
        const double q = std::min(ra[i], rb[j]);
        bi_[c] = i;
        bj_[c] = j;
        f_[c] = q;
        ra[i] -= q;
        rb[j] -= q;
        if (c == nb - 1) break;
        if (i == m_ - 1) ++j;
        else if (j == n_ - 1) ++i;
        else if (ra[i] <= rb[j]) ++i;
        else ++j;
      }
    }
    double cmax = 0;
    for (double c : C) cmax = std::max(cmax, std::abs(c));
    const double tol = 1e-12 * std::max(1.0, cmax);
    u_.assign(m_, 0.0);
    v_.assign(n_, 0.0);
    int degenerate_run = 0;
    const int max_iter = 100 * (m_ + n_) * (m_ + n_) + 100;
    for (int it = 0; it < max_iter; ++it) {
      build_tree();
      potentials(C);
      // pricing
      int ei = -1, ej = -1;
      double best = -tol;
      const bool bland = degenerate_run > m_ + n_;
      for (int i = 0; i < m_ && !(bland && ei >= 0); ++i)
        for (int j = 0; j < n_; ++j) {
          const double r = C[static_cast<std::size_t>(i) * n_ + j] - u_[i] - v_[j];
          if (r < best) {
            best = r;
            ei = i;
            ej = j;
            if (bland) break;
          }
        }
      if (ei < 0) break;
      // path in the tree from row ei to column ej
      const std::vector<int> path = tree_path(ei, m_ + ej);
      double theta = std::numeric_limits<double>::infinity();
      int leave = -1;
      for (std::size_t s = 0; s < path.size(); s += 2) {
        if (f_[path[s]] < theta) {
          theta = f_[path[s]];
          leave = path[s];
        }
      }
      for (std::size_t s = 0; s < path.size(); ++s) f_[path[s]] += (s % 2 == 0) ? -theta : theta;
      degenerate_run = theta > 0 ? 0 : degenerate_run + 1;
      bi_[leave] = ei;
      bj_[leave] = ej;
      f_[leave] = theta;
    }
    double cost = 0;
    for (int c = 0; c < nb; ++c) cost += f_[c] * C[static_cast<std::size_t>(bi_[c]) * n_ + bj_[c]];
    return cost;
  }

 private:
  int m_ = 0, n_ = 0;
  std::vector<int> bi_, bj_;
  std::vector<double> f_, u_, v_;
  std::vector<int> tree_off_, tree_cell_, tree_fill_;  // node -> basis cells (rows 0..m-1, columns m..)
  std::vector<int> parent_cell_, parent_node_, queue_;

  void build_tree() {
    const int nn = m_ + n_, nb = static_cast<int>(bi_.size());
    tree_off_.assign(static_cast<std::size_t>(nn) + 1, 0);
    for (int c = 0; c < nb; ++c) {
      ++tree_off_[bi_[c] + 1];
      ++tree_off_[m_ + bj_[c] + 1];
    }
    for (int v = 0; v < nn; ++v) tree_off_[v + 1] += tree_off_[v];
    tree_fill_.assign(tree_off_.begin(), tree_off_.end() - 1);
    tree_cell_.resize(static_cast<std::size_t>(2 * nb));
    for (int c = 0; c < nb; ++c) {
      tree_cell_[tree_fill_[bi_[c]]++] = c;
      tree_cell_[tree_fill_[m_ + bj_[c]]++] = c;
    }
  }
  int other(int c, int node) const { return node < m_ ? m_ + bj_[c] : bi_[c]; }

  // BFS over the tree from `root`, recording parents.
  void bfs(int root) {
    parent_cell_.assign(static_cast<std::size_t>(m_ + n_), -2);
    parent_node_.assign(static_cast<std::size_t>(m_ + n_), -1);
    queue_.clear();
    queue_.push_back(root);
    parent_cell_[root] = -1;
    for (std::size_t h = 0; h < queue_.size(); ++h) {
      const int x = queue_[h];
      for (int t = tree_off_[x]; t < tree_off_[x + 1]; ++t) {
        const int c = tree_cell_[t];
        const int y = other(c, x);
        if (parent_cell_[y] != -2) continue;
        parent_cell_[y] = c;
        parent_node_[y] = x;
        queue_.push_back(y);
      }
    }
  }
  void potentials(const std::vector<double>& C) {
    bfs(0);
    u_[0] = 0;
    for (std::size_t h = 1; h < queue_.size(); ++h) {
      const int y = queue_[h], c = parent_cell_[y];
      const double cost = C[static_cast<std::size_t>(bi_[c]) * n_ + bj_[c]];
      if (y < m_) u_[y] = cost - v_[bj_[c]];
      else v_[y - m_] = cost - u_[bi_[c]];
    }
  }
  // Cells on the tree path from row node r to column node col, starting at r's end:
  // the cells at even positions lose flow when (r, col) enters.
  std::vector<int> tree_path(int r, int col) {
    bfs(col);
    std::vector<int> path;
    for (int x = r; x != col; x = parent_node_[x]) path.push_back(parent_cell_[x]);
    return path;
  }
};

// ---- Ollivier-Ricci -------------------------------------------------------------------

namespace detail {

// Dijkstra workspace of one thread: distances stay +inf outside the touched set.
struct Dijkstra {
  std::vector<double> d;
  std::vector<int> touched;
  std::vector<char> done;
  explicit Dijkstra(Index n) : d(static_cast<std::size_t>(n), std::numeric_limits<double>::infinity()),
                               done(static_cast<std::size_t>(n), 0) {}
  // Settles vertices from s until all `n_targets` vertices flagged in is_target are settled.
  void run(const Graph& g, int s, const std::vector<int>& target_slot, int n_targets) {
    for (int v : touched) {
      d[v] = std::numeric_limits<double>::infinity();
      done[v] = 0;
    }
    touched.clear();
    using QE = std::pair<double, int>;
    std::priority_queue<QE, std::vector<QE>, std::greater<QE>> q;
    d[s] = 0;
    touched.push_back(s);
    q.emplace(0.0, s);
    int found = 0;
    while (!q.empty() && found < n_targets) {
      const auto [dv, v] = q.top();
      q.pop();
      if (done[v]) continue;
      done[v] = 1;
      if (target_slot[v] >= 0) ++found;
      for (Index e = g.offset[v]; e < g.offset[v + 1]; ++e) {
        const int u = g.adj[e];
        const double nd = dv + g.w[e];
        if (nd < d[u]) {
          if (d[u] == std::numeric_limits<double>::infinity()) touched.push_back(u);
          d[u] = nd;
          q.emplace(nd, u);
        }
      }
    }
  }
};

// Support N[x] (x first) and masses of m_x.
inline void node_measure(const Graph& g, int x, double alpha, double p, std::vector<int>& sup,
                         std::vector<double>& mass) {
  sup.clear();
  mass.clear();
  sup.push_back(x);
  mass.push_back(alpha);
  const Index b = g.offset[x], e = g.offset[x + 1];
  if (b == e) {
    mass[0] = 1;
    return;
  }
  double lo = std::numeric_limits<double>::infinity();
  for (Index t = b; t < e; ++t) lo = std::min(lo, std::pow(g.w[t], p));
  double s = 0;
  for (Index t = b; t < e; ++t) s += std::exp(-(std::pow(g.w[t], p) - lo));  // stable: shift by the min
  for (Index t = b; t < e; ++t) {
    sup.push_back(g.adj[t]);
    mass.push_back((1 - alpha) * std::exp(-(std::pow(g.w[t], p) - lo)) / s);
  }
}

}  // namespace detail

// Shortest-path distances from every vertex a to the vertices within 3 hops of a
// (the only ground costs any transport plan needs: a in N[x], b in N[y], x ~ y), as
// rows of (vertex, distance) sorted by vertex. One Dijkstra per vertex, stopped as
// soon as its 3-hop ball is settled.
struct BallDistances {
  std::vector<Index> offset;
  std::vector<int> vertex;
  std::vector<double> dist;
  double at(int a, int b) const {
    const auto first = vertex.begin() + offset[a], last = vertex.begin() + offset[a + 1];
    const auto it = std::lower_bound(first, last, b);
    return dist[static_cast<std::size_t>(it - vertex.begin())];
  }
};

inline BallDistances ball_distances(const Graph& g, const Exec& ex) {
  const Index n = g.n;
  std::vector<std::vector<std::pair<int, double>>> rows(static_cast<std::size_t>(n));
  const Blocks blocks(n, 64);
  for (Index bl = 0; bl < blocks.count; ++bl) {
#pragma omp parallel num_threads(omp_threads(ex.threads))
    {
      detail::Dijkstra dj(n);
      std::vector<int> slot(static_cast<std::size_t>(n), -1), ball;
#pragma omp for schedule(dynamic, 4)
      for (Index a = blocks.begin(bl); a < blocks.end(bl); ++a) {
        ball.clear();
        ball.push_back(static_cast<int>(a));
        slot[a] = 0;
        std::size_t lo = 0;
        for (int hop = 0; hop < 3; ++hop) {
          const std::size_t hi = ball.size();
          for (std::size_t q = lo; q < hi; ++q)
            for (Index t = g.offset[ball[q]]; t < g.offset[ball[q] + 1]; ++t) {
              const int v = g.adj[t];
              if (slot[v] < 0) {
                slot[v] = static_cast<int>(ball.size());
                ball.push_back(v);
              }
            }
          lo = hi;
        }
        dj.run(g, static_cast<int>(a), slot, static_cast<int>(ball.size()));
        auto& row = rows[a];
        row.reserve(ball.size());
        for (int v : ball) {
          row.emplace_back(v, dj.d[v]);
          slot[v] = -1;
        }
        std::sort(row.begin(), row.end());
      }
    }
    ex.check();
  }
  BallDistances out;
  out.offset.assign(static_cast<std::size_t>(n) + 1, 0);
  for (Index a = 0; a < n; ++a) out.offset[a + 1] = out.offset[a] + static_cast<Index>(rows[a].size());
  out.vertex.resize(static_cast<std::size_t>(out.offset[n]));
  out.dist.resize(out.vertex.size());
  for (Index a = 0; a < n; ++a) {
    for (std::size_t r = 0; r < rows[a].size(); ++r) {
      out.vertex[out.offset[a] + r] = rows[a][r].first;
      out.dist[out.offset[a] + r] = rows[a][r].second;
    }
    std::vector<std::pair<int, double>>().swap(rows[a]);
  }
  return out;
}

// Curvature of every edge of g (in g.from / g.to order).
inline Vector ollivier_ricci(const Graph& g, double alpha, double exp_power, const Exec& ex) {
  const Index ne = static_cast<Index>(g.from.size());
  Vector kappa(ne);
  const BallDistances bd = ball_distances(g, ex);
  const Blocks blocks(ne, 64);
  for (Index bl = 0; bl < blocks.count; ++bl) {
#pragma omp parallel num_threads(omp_threads(ex.threads))
    {
      std::vector<int> supx, supy;
      std::vector<double> mx, my, cost;
      Transport tp;
#pragma omp for schedule(dynamic, 16)
      for (Index e = blocks.begin(bl); e < blocks.end(bl); ++e) {
        const int x = g.from[e], y = g.to[e];
        detail::node_measure(g, x, alpha, exp_power, supx, mx);
        detail::node_measure(g, y, alpha, exp_power, supy, my);
        double sa = 0, sb = 0;
        for (double v : mx) sa += v;
        for (double v : my) sb += v;
        for (double& v : my) v *= sa / sb;
        // Mass that both measures put on the same vertex stays in place: with a metric
        // ground cost, W1(m_x, m_y) = W1(m_x - m, m_y - m) for m = min(m_x, m_y)
        // (Kantorovich-Rubinstein), so only the excesses are transported.
        for (std::size_t a = 0; a < supx.size(); ++a)
          for (std::size_t b = 0; b < supy.size(); ++b)
            if (supx[a] == supy[b]) {
              const double c = std::min(mx[a], my[b]);
              mx[a] -= c;
              my[b] -= c;
            }
        std::size_t ka = 0, kb = 0;
        for (std::size_t a = 0; a < supx.size(); ++a)
          if (mx[a] > 0) {
            supx[ka] = supx[a];
            mx[ka++] = mx[a];
          }
        for (std::size_t b = 0; b < supy.size(); ++b)
          if (my[b] > 0) {
            supy[kb] = supy[b];
            my[kb++] = my[b];
          }
        supx.resize(ka);
        mx.resize(ka);
        supy.resize(kb);
        my.resize(kb);
        if (ka == 0 || kb == 0) {
          kappa(e) = 1.0;
          continue;
        }
        cost.resize(supx.size() * supy.size());
        for (std::size_t a = 0; a < supx.size(); ++a)
          for (std::size_t b = 0; b < supy.size(); ++b) cost[a * supy.size() + b] = bd.at(supx[a], supy[b]);
        sa = 0;
        sb = 0;
        for (double v : mx) sa += v;
        for (double v : my) sb += v;
        for (double& v : my) v *= sa / sb;
        kappa(e) = 1.0 - tp.solve(mx, my, cost) / bd.at(x, y);
      }
    }
    ex.check();
  }
  return kappa;
}

inline Vector forman_ricci(const Graph& g) {
  const Index ne = static_cast<Index>(g.from.size());
  Vector f(ne);
  for (Index e = 0; e < ne; ++e) {
    const int x = g.from[e], y = g.to[e];
    const double we = g.weight[e];
    double sx = 0, sy = 0;
    for (Index t = g.offset[x]; t < g.offset[x + 1]; ++t)
      if (g.adj[t] != y) sx += 1.0 / std::sqrt(we * g.w[t]);
    for (Index t = g.offset[y]; t < g.offset[y + 1]; ++t)
      if (g.adj[t] != x) sy += 1.0 / std::sqrt(we * g.w[t]);
    f(e) = we * (2.0 / we - sx - sy);
  }
  return f;
}

}  // namespace tensorscope

import SwiftUI

@main
struct A2BSSampleApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
